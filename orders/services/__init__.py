"""Every write to orders, one module per capability; callers import the submodule."""
