# plugins/ — (see the files in this folder)
