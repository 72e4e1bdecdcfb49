# pipelines/ — (see the files in this folder)
