"""The Manager: starts the factory, the controllers and the endpoints, in one of its run
modes (plain, leader-elected, sharded).
"""
