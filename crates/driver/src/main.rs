//! The `sdss-clustering` command. It composes sdss-io, sdss-cnn, sdss-pca and sdss-cluster.

fn main() {
    eprintln!("sdss-clustering: the pipeline command is not built yet (see issue 6)");
    std::process::exit(2);
}
