"""distbp.nn"""
