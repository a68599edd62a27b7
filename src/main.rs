fn main() {
    llq::cli::main()
}
