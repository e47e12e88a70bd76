"""The disputes API (D-10): chargebacks, suspensions and the processor webhook."""
