"""distbp.optim"""
