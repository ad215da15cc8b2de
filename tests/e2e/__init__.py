"""End-to-end tests: the three services as real processes, spoken to over real HTTP."""
