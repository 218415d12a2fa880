// Temporary entry point until the server module lands (replaced by the lead engineer).
int main() { return 0; }
