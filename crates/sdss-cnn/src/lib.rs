//! The sdss_CNN galaxy-spin network reimplemented in candle, loading weights converted from Keras.
