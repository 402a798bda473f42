print("tether-subsystem: not built yet")
