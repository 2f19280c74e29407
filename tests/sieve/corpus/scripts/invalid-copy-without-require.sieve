redirect :copy "a@b.c";
