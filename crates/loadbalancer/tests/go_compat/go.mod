module gocompat

go 1.21
