"""Services: one function per use case; they orchestrate the domain through ports, never SQL or HTTP."""
