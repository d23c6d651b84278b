"""distbp: distributed data-parallel backpropagation with a numpy tensor-autodiff core."""
