"""sensorprint.store"""
