"""One module per claim; see :data:`validation.CLAIMS` for the order in which they run."""
