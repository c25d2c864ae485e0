"""sensorprint.simulate"""
