"""distbp.comm"""
