"""Every write to refunds, one module per capability; callers import the submodule."""
