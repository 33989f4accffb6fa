"""Mean-field theory of deep networks at initialization (fully connected and convolutional)."""
