"""distbp.train"""
