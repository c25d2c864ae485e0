"""sensorprint.media"""
