# bench/ — (see the files in this folder)
