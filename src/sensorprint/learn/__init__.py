"""sensorprint.learn"""
