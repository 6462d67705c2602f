using System.Buffers.Binary;
using System.IO.Compression;

namespace Bn.MLNet.Samples.Onnx;

/// <summary>The Fashion-MNIST test set read from its two IDX files (gzip or raw): 784 raw pixels (0..255) and a label per image.</summary>
internal sealed class FashionMnistTestSet
{
    /// <summary>The official class names, indexed by the label stored in the files.</summary>
    public static readonly string[] ClassNames =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    private FashionMnistTestSet(float[][] images, byte[] labels)
    {
        Images = images;
        Labels = labels;
    }

    public float[][] Images { get; }

    public byte[] Labels { get; }

    /// <summary>Reads t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz) from <paramref name="folder"/>.</summary>
    /// <exception cref="InvalidDataException">A file is not an IDX file of the expected kind, or the counts differ.</exception>
    public static FashionMnistTestSet Read(string folder, int? limit)
    {
        byte[] images = ReadFile(folder, "t10k-images-idx3-ubyte");
        byte[] labels = ReadFile(folder, "t10k-labels-idx1-ubyte");
        int count = Header(images, 0x803, "images", 3, out int offset);
        int labelCount = Header(labels, 0x801, "labels", 1, out int labelOffset);
        if (count != labelCount)
            throw new InvalidDataException($"{count} test images but {labelCount} labels.");
        int rows = BinaryPrimitives.ReadInt32BigEndian(images.AsSpan(8)), cols = BinaryPrimitives.ReadInt32BigEndian(images.AsSpan(12));
        int length = rows * cols;
        int n = Math.Min(count, limit ?? count);
        if (images.Length < offset + ((long)n * length) || labels.Length < labelOffset + n)
            throw new InvalidDataException("The test set files are truncated.");
        var pixels = new float[n][];
        for (int i = 0; i < n; i++)
        {
            pixels[i] = new float[length];
            for (int j = 0; j < length; j++)
                pixels[i][j] = images[offset + (i * length) + j];
        }

        return new FashionMnistTestSet(pixels, labels.AsSpan(labelOffset, n).ToArray());
    }

    private static byte[] ReadFile(string folder, string name)
    {
        string raw = Path.Combine(folder, name), gz = raw + ".gz";
        if (File.Exists(gz))
        {
            using var file = File.OpenRead(gz);
            using var unzip = new GZipStream(file, CompressionMode.Decompress);
            using var memory = new MemoryStream();
            unzip.CopyTo(memory);
            return memory.ToArray();
        }

        if (File.Exists(raw))
            return File.ReadAllBytes(raw);
        throw new FileNotFoundException($"Neither {gz} nor {raw} exists.", gz);
    }

    private static int Header(byte[] data, int magic, string what, int dimensions, out int offset)
    {
        offset = 4 + (4 * dimensions);
        if (data.Length < offset || BinaryPrimitives.ReadInt32BigEndian(data) != magic)
            throw new InvalidDataException($"The {what} file is not an IDX file of unsigned bytes with {dimensions} dimension(s) (magic 0x{magic:X8}).");
        return BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(4));
    }
}
