# models/ — the shipped Fashion-MNIST model (installed under $(pkgdatadir)/models).
fmnistdir = $(pkgdatadir)/models/fashion_mnist
dist_fmnist_DATA = models/fashion_mnist/vqgan.yaml
dist_fmnist_DATA += models/fashion_mnist/transformer.yaml
dist_fmnist_DATA += models/fashion_mnist/transformer.safetensors
dist_fmnist_DATA += models/fashion_mnist/README.md
dist_fmnist_DATA += models/fashion_mnist/samples.png
dist_fmnist_DATA += models/fashion_mnist/transformer_cfg.safetensors
dist_fmnist_DATA += models/fashion_mnist/samples_cfg.png
