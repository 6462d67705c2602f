using System.Buffers.Binary;
using System.IO.Compression;

namespace Bn.MLNet.Tests.Data;

/// <summary>A temporary folder for synthetic IDX files, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "bnmlnet-data-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class IdxTestFiles
{
    /// <summary>Header bytes (big-endian magic then sizes) followed by the payload.</summary>
    public static byte[] Build(int magic, int[] dims, byte[] payload)
    {
        var bytes = new byte[4 + (4 * dims.Length) + payload.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int i = 0; i < dims.Length; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + (4 * i)), dims[i]);
        }

        payload.CopyTo(bytes, 4 + (4 * dims.Length));
        return bytes;
    }

    public static void Write(string path, byte[] content, bool gzip)
    {
        if (!gzip)
        {
            System.IO.File.WriteAllBytes(path, content);
            return;
        }

        using var file = System.IO.File.Create(path);
        using var zip = new GZipStream(file, CompressionLevel.Fastest);
        zip.Write(content);
    }

    public static byte[] RandomBytes(int length, int seed, int maxExclusive = 256)
    {
        var random = new Random(seed);
        var bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)random.Next(maxExclusive);
        }

        return bytes;
    }

    public static byte[] Images(int count, int rows, int columns, byte[] pixels) => Build(0x00000803, [count, rows, columns], pixels);

    public static byte[] Labels(byte[] labels) => Build(0x00000801, [labels.Length], labels);
}
