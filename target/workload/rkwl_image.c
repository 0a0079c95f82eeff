// SPDX-License-Identifier: MIT
// stb_image (JPEG, BMP, PNG only) and stb_image_resize2, from Debian's libstb-dev headers,
// compiled once here so that rkwl.c stays free of their warnings.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_PNG
#define STBI_NO_STDIO_WRITE
#include <stb/stb_image.h>

#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image_resize2.h>
