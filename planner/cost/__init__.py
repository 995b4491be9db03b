"""The cost engine: roofline / memory-access model vectorized over configurations."""
