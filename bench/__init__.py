"""The load benchmark: `inv bench`."""
