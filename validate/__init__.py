"""PyTorch networks trained on CPU or GPU to test the mean-field and random-matrix predictions."""

# --- Initializers ---

# --- Experiments ---
