"""What an object dict is, and pure operations on it: accessors, keys, resources, labels,
conditions, owner references and finalizers.
"""
