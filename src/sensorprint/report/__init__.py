"""sensorprint.report"""
