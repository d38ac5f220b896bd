"""Orders: what a customer owes, and the status its payments give it."""
