using SkiaSharp;

namespace Bn.MLNet.Samples.Commands;

/// <summary>Turns PNG or JPEG files of any size into a model's raw C×H×W input (values 0..255, planar).</summary>
public static class ImageInput
{
    /// <summary>
    /// Decodes <paramref name="path"/>, resizes it to <paramref name="width"/>×<paramref name="height"/> and returns
    /// planar pixel values: one plane for grey models (luminance), three (R, G, B) for colour models.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not an image SkiaSharp can decode.</exception>
    public static float[] Load(string path, int channels, int height, int width)
    {
        if (channels != 1 && channels != 3)
        {
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "Images can feed models with 1 (grey) or 3 (RGB) channels.");
        }

        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Image file '{path}' does not exist.", path);
        }

        using var decoded = SKBitmap.Decode(path)
            ?? throw new InvalidDataException($"'{path}' is not a PNG or JPEG image that can be decoded.");
        using var resized = decoded.Width == width && decoded.Height == height
            ? decoded.Copy(SKColorType.Rgba8888)
            : decoded.Resize(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul), SKFilterQuality.High);
        if (resized is null)
        {
            throw new InvalidDataException($"'{path}' could not be resized to {width}×{height}.");
        }

        var values = new float[channels * height * width];
        int plane = height * width;
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                SKColor c = resized.GetPixel(x, y);
                int i = y * width + x;
                if (channels == 1)
                {
                    values[i] = (float)Math.Round(0.299 * c.Red + 0.587 * c.Green + 0.114 * c.Blue);
                }
                else
                {
                    values[i] = c.Red;
                    values[plane + i] = c.Green;
                    values[2 * plane + i] = c.Blue;
                }
            }
        }

        return values;
    }

    /// <summary>Writes a grey image (raw 0..255 values, row-major) as a PNG file.</summary>
    public static void SaveGreyPng(string path, ReadOnlySpan<float> pixels, int height, int width)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                byte v = (byte)Math.Clamp(pixels[y * width + x], 0, 255);
                bitmap.SetPixel(x, y, new SKColor(v, v, v));
            }
        }

        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        using var stream = File.Create(path);
        data.SaveTo(stream);
    }
}
