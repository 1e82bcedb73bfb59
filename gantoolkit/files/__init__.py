"""What gantool reads and writes on disk: checkpoints and other safetensors files, images, run directories,
outputs, model folders and exports."""
