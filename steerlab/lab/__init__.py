"""The lab around the steering core: parameters, runs and their manifests, the headless runner, figures, the command line and the benchmark. The core never imports it."""
