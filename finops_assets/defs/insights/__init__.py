"""Insights over core.allocated_costs (asset group ``insights``, schema ``insights``): anomalies
per monitor with root causes and their quality from people's feedback."""
