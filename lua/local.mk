# lua/ — (see the files in this folder)
