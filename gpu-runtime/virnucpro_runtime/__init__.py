"""virnucpro resident PyTorch runtime."""
