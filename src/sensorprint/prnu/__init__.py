"""sensorprint.prnu"""
