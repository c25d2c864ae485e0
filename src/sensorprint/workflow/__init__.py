"""sensorprint.workflow"""
