"""Month close for finance (asset group ``finance``, schema ``finance``, monthly partitions keyed
by billing period): invoice totals, their reconciliation with the cost data, chargeback."""
