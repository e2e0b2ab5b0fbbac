"""finops_assets: cloud billing exports → FOCUS facts → amortized, allocated costs → rollups."""

__version__ = "0.1.0"
