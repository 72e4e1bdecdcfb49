# kernels/cuda/ — (see the files in this folder)
