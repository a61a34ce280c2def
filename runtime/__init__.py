"""deblurrt.runtime: deblur camera streams. Imports with numpy and OpenCV only; each backend's library loads lazily."""
