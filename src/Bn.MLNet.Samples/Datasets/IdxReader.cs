using System.Buffers.Binary;
using System.IO.Compression;

namespace Bn.MLNet.Samples.Datasets;

/// <summary>
/// Reads IDX files (the MNIST / Fashion-MNIST format): a big-endian header (magic number, then one 32-bit size per
/// dimension) followed by the unsigned-byte payload. Files may be gzip-compressed or raw; gzip is detected from the
/// content (bytes <c>1F 8B</c>), never from the file name. Every structural problem (wrong magic number, bad
/// dimensions, truncated or over-long payload, corrupt gzip stream) raises <see cref="InvalidDataException"/>
/// naming the file, what was expected and what was found.
/// </summary>
public static class IdxReader
{
    /// <summary>Magic number of an IDX file of unsigned bytes with three dimensions (images: count, rows, columns).</summary>
    public const int ImagesMagic = 0x00000803;

    /// <summary>Magic number of an IDX file of unsigned bytes with one dimension (labels: count).</summary>
    public const int LabelsMagic = 0x00000801;

    /// <summary>Reads an IDX image file.</summary>
    /// <param name="path">The file, gzip-compressed or raw.</param>
    /// <param name="limit">Read only the first <paramref name="limit"/> images (all when null or larger than the file).
    /// With a limit only the needed bytes are decompressed, so the rest of the file is not checked.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid IDX image file.</exception>
    public static IdxImages ReadImages(string path, int? limit = null)
    {
        CheckLimit(limit);
        using var file = IdxFile.Open(path, ImagesMagic, "image");
        return ReadImagesPayload(file, RowsToRead(file.Count, limit));
    }

    /// <summary>Reads an IDX label file.</summary>
    /// <param name="path">The file, gzip-compressed or raw.</param>
    /// <param name="limit">Read only the first <paramref name="limit"/> labels (all when null or larger than the file).</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid IDX label file.</exception>
    public static byte[] ReadLabels(string path, int? limit = null)
    {
        CheckLimit(limit);
        using var file = IdxFile.Open(path, LabelsMagic, "label");
        return file.ReadPayload(RowsToRead(file.Count, limit), 1, "labels");
    }

    /// <summary>
    /// Reads an image file and its label file, first checking that both headers declare the same count.
    /// </summary>
    /// <param name="imagesPath">The IDX image file.</param>
    /// <param name="labelsPath">The IDX label file.</param>
    /// <param name="limit">Read only the first <paramref name="limit"/> rows of each (all when null).</param>
    /// <exception cref="InvalidDataException">Either file is invalid, or their counts differ (the message names both
    /// files and both counts).</exception>
    public static IdxLabeledImages ReadLabeledImages(string imagesPath, string labelsPath, int? limit = null)
    {
        CheckLimit(limit);
        using var images = IdxFile.Open(imagesPath, ImagesMagic, "image");
        using var labels = IdxFile.Open(labelsPath, LabelsMagic, "label");
        if (images.Count != labels.Count)
        {
            throw new InvalidDataException(
                $"Image/label count mismatch: '{imagesPath}' holds {images.Count} images but '{labelsPath}' holds "
                + $"{labels.Count} labels; both files must describe the same rows.");
        }

        int rows = RowsToRead(images.Count, limit);
        var pixels = ReadImagesPayload(images, rows);
        var labelBytes = labels.ReadPayload(rows, 1, "labels");
        return new IdxLabeledImages(pixels, labelBytes);
    }

    private static IdxImages ReadImagesPayload(IdxFile file, int rows)
    {
        int height = file.Dimensions[1];
        int width = file.Dimensions[2];
        var pixels = file.ReadPayload(rows, height * width, $"images of {height}×{width}");
        return new IdxImages(rows, height, width, pixels);
    }

    private static void CheckLimit(int? limit)
    {
        if (limit is < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(limit), limit, "The row limit must be zero or more (null reads every row).");
        }
    }

    private static int RowsToRead(int count, int? limit) => limit is int l ? Math.Min(l, count) : count;

    /// <summary>An open IDX file positioned after its header.</summary>
    private sealed class IdxFile : IDisposable
    {
        private readonly Stream _stream;
        private readonly bool _gzip;

        private IdxFile(string path, Stream stream, bool gzip, int[] dimensions)
        {
            Path = path;
            _stream = stream;
            _gzip = gzip;
            Dimensions = dimensions;
        }

        public string Path { get; }

        public int[] Dimensions { get; }

        public int Count => Dimensions[0];

        public static IdxFile Open(string path, int expectedMagic, string kind)
        {
            ArgumentException.ThrowIfNullOrEmpty(path);
            if (!File.Exists(path))
            {
                throw new FileNotFoundException($"IDX {kind} file '{path}' does not exist.", path);
            }

            var fileStream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            Stream stream = fileStream;
            try
            {
                Span<byte> probe = stackalloc byte[2];
                int probed = fileStream.ReadAtLeast(probe, 2, throwOnEndOfStream: false);
                fileStream.Position = 0;
                bool gzip = probed == 2 && probe[0] == 0x1F && probe[1] == 0x8B;
                if (gzip)
                {
                    stream = new GZipStream(fileStream, CompressionMode.Decompress);
                }

                CheckMagic(stream, path, expectedMagic, kind, gzip ? "after gzip decompression" : "raw");
                int[] dims = ReadDimensions(stream, path, expectedMagic & 0xFF, kind);
                return new IdxFile(path, stream, gzip, dims);
            }
            catch
            {
                stream.Dispose();
                fileStream.Dispose();
                throw;
            }
        }

        /// <summary>Reads the 4-byte magic number and refuses a file that does not start with <paramref name="expectedMagic"/>.</summary>
        private static void CheckMagic(Stream stream, string path, int expectedMagic, string kind, string source)
        {
            int expectedDims = expectedMagic & 0xFF;
            Span<byte> header = stackalloc byte[4];
            int got = ReadFully(stream, header, path);
            if (got < 4)
            {
                throw new InvalidDataException(
                    $"'{path}' is not an IDX {kind} file: it holds {got} bytes ({source}), too few for the 4-byte magic number "
                    + $"0x{expectedMagic:X8}.");
            }

            int magic = BinaryPrimitives.ReadInt32BigEndian(header);
            if (magic != expectedMagic)
            {
                throw new InvalidDataException(
                    $"'{path}' is not an IDX {kind} file: magic number 0x{expectedMagic:X8} (unsigned bytes, "
                    + $"{expectedDims} dimension{(expectedDims == 1 ? "" : "s")}) expected, found 0x{magic:X8} ({source}).");
            }
        }

        /// <summary>Reads the dimension sizes after the magic number and checks that the payload fits in one array.</summary>
        private static int[] ReadDimensions(Stream stream, string path, int expectedDims, string kind)
        {
            Span<byte> dimBytes = stackalloc byte[4 * expectedDims];
            int got = ReadFully(stream, dimBytes, path);
            if (got < dimBytes.Length)
            {
                throw new InvalidDataException(
                    $"'{path}' is truncated: its header needs {4 + dimBytes.Length} bytes ({expectedDims} dimension sizes) "
                    + $"but the file ends after {4 + got}.");
            }

            var dims = new int[expectedDims];
            long rowBytes = 1;
            for (int i = 0; i < expectedDims; i++)
            {
                uint size = BinaryPrimitives.ReadUInt32BigEndian(dimBytes.Slice(4 * i, 4));
                bool isCount = i == 0;
                if (size > int.MaxValue || (!isCount && size == 0))
                {
                    throw new InvalidDataException(
                        $"'{path}' has an invalid header: dimension {i} ({DimensionName(kind, i)}) is {size}; expected "
                        + (isCount ? $"0..{int.MaxValue}." : $"1..{int.MaxValue}."));
                }

                dims[i] = (int)size;
                rowBytes *= isCount ? 1 : dims[i];
            }

            if (rowBytes > Array.MaxLength || rowBytes * dims[0] > Array.MaxLength)
            {
                throw new InvalidDataException(
                    $"'{path}' declares {string.Join("×", dims)} = {rowBytes * dims[0]} payload bytes, more than one array can hold "
                    + $"({Array.MaxLength}).");
            }

            return dims;
        }

        /// <summary>Reads <paramref name="rows"/> rows of <paramref name="rowBytes"/> bytes; when every row is read,
        /// also checks that nothing follows the payload.</summary>
        public byte[] ReadPayload(int rows, int rowBytes, string what)
        {
            long needed = (long)rows * rowBytes;
            var payload = new byte[needed];
            int got = ReadFully(_stream, payload, Path);
            long declared = (long)Count * rowBytes;
            if (got < needed)
            {
                string scope = rows == Count
                    ? $"the header declares {Count} {what} = {declared} payload bytes"
                    : $"reading the first {rows} of {Count} {what} needs {needed} payload bytes";
                throw new InvalidDataException(
                    $"'{Path}' is truncated: {scope}, but only {got} bytes follow the header"
                    + (_gzip ? " (after gzip decompression)." : "."));
            }

            if (rows == Count)
            {
                Span<byte> extra = stackalloc byte[1];
                if (ReadFully(_stream, extra, Path) > 0)
                {
                    throw new InvalidDataException(
                        $"'{Path}' is longer than its header says: {Count} {what} = {declared} payload bytes declared, "
                        + "but more data follows.");
                }
            }

            return payload;
        }

        public void Dispose() => _stream.Dispose();

        private static string DimensionName(string kind, int index) => index switch
        {
            0 => $"{kind} count",
            1 => "rows",
            _ => "columns",
        };

        private static int ReadFully(Stream stream, Span<byte> buffer, string path)
        {
            try
            {
                return stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"'{path}' is not a valid gzip stream or is corrupt: {e.Message}", e);
            }
        }
    }
}
