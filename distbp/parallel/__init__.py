"""distbp.parallel"""
