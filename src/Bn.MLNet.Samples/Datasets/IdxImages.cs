namespace Bn.MLNet.Samples.Datasets;

/// <summary>
/// Greyscale images read from an IDX image file (magic 0x00000803): <see cref="Count"/> images of
/// <see cref="Rows"/>×<see cref="Columns"/> unsigned bytes, stored row-major one image after another.
/// </summary>
public sealed class IdxImages
{
    /// <summary>Wraps already-read pixels.</summary>
    /// <param name="count">Number of images.</param>
    /// <param name="rows">Rows per image (height).</param>
    /// <param name="columns">Columns per image (width).</param>
    /// <param name="pixels">Pixels, <paramref name="count"/>×<paramref name="rows"/>×<paramref name="columns"/> bytes.</param>
    /// <exception cref="ArgumentException">The pixel array length does not match the dimensions.</exception>
    public IdxImages(int count, int rows, int columns, byte[] pixels)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(columns, 1);
        ArgumentNullException.ThrowIfNull(pixels);
        long expected = (long)count * rows * columns;
        if (pixels.LongLength != expected)
        {
            throw new ArgumentException(
                $"Pixel array holds {pixels.LongLength} bytes; {count} images of {rows}×{columns} need {expected}.",
                nameof(pixels));
        }

        Count = count;
        Rows = rows;
        Columns = columns;
        Pixels = pixels;
    }

    /// <summary>Number of images.</summary>
    public int Count { get; }

    /// <summary>Rows per image (height).</summary>
    public int Rows { get; }

    /// <summary>Columns per image (width).</summary>
    public int Columns { get; }

    /// <summary>Bytes per image: <see cref="Rows"/>×<see cref="Columns"/>.</summary>
    public int PixelsPerImage => Rows * Columns;

    /// <summary>All pixels (0..255), image i at [i×<see cref="PixelsPerImage"/>, (i+1)×<see cref="PixelsPerImage"/>).</summary>
    public byte[] Pixels { get; }

    /// <summary>The pixels of image <paramref name="index"/>.</summary>
    public ReadOnlySpan<byte> GetImage(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return Pixels.AsSpan(index * PixelsPerImage, PixelsPerImage);
    }
}
