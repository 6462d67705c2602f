using Bn.MLNet.Data;

namespace Bn.MLNet.Tests.Data;

public sealed class IdxReaderTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void GzipAndRawReadTheSame_DetectedByContentNotName()
    {
        var pixels = IdxTestFiles.RandomBytes(5 * 3 * 4, seed: 1);
        var labels = IdxTestFiles.RandomBytes(5, seed: 2, maxExclusive: 10);
        // gzip content under a name without .gz, raw content under a .gz name.
        IdxTestFiles.Write(_dir.File("images.idx"), IdxTestFiles.Images(5, 3, 4, pixels), gzip: true);
        IdxTestFiles.Write(_dir.File("images-raw.gz"), IdxTestFiles.Images(5, 3, 4, pixels), gzip: false);
        IdxTestFiles.Write(_dir.File("labels.idx"), IdxTestFiles.Labels(labels), gzip: true);
        IdxTestFiles.Write(_dir.File("labels-raw.gz"), IdxTestFiles.Labels(labels), gzip: false);

        var fromGzip = IdxReader.ReadImages(_dir.File("images.idx"));
        var fromRaw = IdxReader.ReadImages(_dir.File("images-raw.gz"));

        foreach (var images in new[] { fromGzip, fromRaw })
        {
            Assert.Equal(5, images.Count);
            Assert.Equal(3, images.Rows);
            Assert.Equal(4, images.Columns);
            Assert.Equal(pixels, images.Pixels);
        }

        Assert.Equal(pixels.AsSpan(12, 12).ToArray(), fromGzip.GetImage(1).ToArray());
        Assert.Equal(labels, IdxReader.ReadLabels(_dir.File("labels.idx")));
        Assert.Equal(labels, IdxReader.ReadLabels(_dir.File("labels-raw.gz")));
        var both = IdxReader.ReadLabeledImages(_dir.File("images.idx"), _dir.File("labels-raw.gz"));
        Assert.Equal(5, both.Count);
        Assert.Equal(labels, both.Labels);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void WrongMagicIsRefusedNamingFileExpectedAndFound(bool gzip)
    {
        string path = _dir.File("labels-as-images");
        IdxTestFiles.Write(path, IdxTestFiles.Labels([1, 2, 3]), gzip);

        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("0x00000803", e.Message);
        Assert.Contains("0x00000801", e.Message);

        string garbage = _dir.File("garbage");
        File.WriteAllBytes(garbage, "GIF89a not an idx file at all"u8.ToArray());
        var e2 = Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabels(garbage));
        Assert.Contains(garbage, e2.Message);
        Assert.Contains("0x00000801", e2.Message);
        Assert.Contains("0x47494638", e2.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TruncatedPayloadIsRefusedWithExpectedAndFoundSizes(bool gzip)
    {
        string path = _dir.File("truncated");
        var full = IdxTestFiles.Images(4, 2, 5, IdxTestFiles.RandomBytes(40, seed: 3));
        IdxTestFiles.Write(path, full.AsSpan(0, full.Length - 7).ToArray(), gzip);

        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("40 payload bytes", e.Message);
        Assert.Contains("only 33 bytes", e.Message);
    }

    [Fact]
    public void TruncatedHeaderAndExtraBytesAreRefused()
    {
        string header = _dir.File("short-header");
        File.WriteAllBytes(header, IdxTestFiles.Images(4, 2, 5, []).AsSpan(0, 9).ToArray());
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(header));
        Assert.Contains(header, e.Message);
        Assert.Contains("truncated", e.Message);

        string longer = _dir.File("longer");
        File.WriteAllBytes(longer, IdxTestFiles.Labels([1, 2, 3]).Concat(new byte[] { 4 }).ToArray());
        var e2 = Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabels(longer));
        Assert.Contains(longer, e2.Message);
        Assert.Contains("longer than its header", e2.Message);
    }

    [Fact]
    public void CutGzipStreamIsRefusedNamingTheFile()
    {
        string whole = _dir.File("whole.gz");
        IdxTestFiles.Write(whole, IdxTestFiles.Images(50, 8, 8, IdxTestFiles.RandomBytes(50 * 64, seed: 4)), gzip: true);
        var compressed = File.ReadAllBytes(whole);
        string cut = _dir.File("cut.gz");
        File.WriteAllBytes(cut, compressed.AsSpan(0, compressed.Length / 2).ToArray());

        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(cut));
        Assert.Contains(cut, e.Message);
    }

    [Fact]
    public void ImageLabelCountMismatchNamesBothFilesAndCounts()
    {
        string images = _dir.File("images");
        string labels = _dir.File("labels");
        IdxTestFiles.Write(images, IdxTestFiles.Images(5, 2, 2, new byte[20]), gzip: false);
        IdxTestFiles.Write(labels, IdxTestFiles.Labels([0, 1, 2, 3]), gzip: true);

        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabeledImages(images, labels));
        Assert.Contains(images, e.Message);
        Assert.Contains(labels, e.Message);
        Assert.Contains("5 images", e.Message);
        Assert.Contains("4 labels", e.Message);
        // The check uses the header counts, so a row limit does not hide it.
        Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabeledImages(images, labels, limit: 2));
    }

    [Fact]
    public void WrongDimensionsAreRefused()
    {
        string twoDims = _dir.File("two-dims");
        IdxTestFiles.Write(twoDims, IdxTestFiles.Build(0x00000802, [3, 4], new byte[12]), gzip: false);
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(twoDims));
        Assert.Contains("3 dimensions", e.Message);
        Assert.Contains("0x00000802", e.Message);

        string zeroRows = _dir.File("zero-rows");
        IdxTestFiles.Write(zeroRows, IdxTestFiles.Images(3, 0, 4, []), gzip: false);
        var e2 = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(zeroRows));
        Assert.Contains(zeroRows, e2.Message);
        Assert.Contains("rows", e2.Message);

        string huge = _dir.File("negative-count");
        IdxTestFiles.Write(huge, IdxTestFiles.Build(0x00000801, [-1], []), gzip: false);
        var e3 = Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabels(huge));
        Assert.Contains("4294967295", e3.Message);

        string notShorts = _dir.File("int16-labels");
        IdxTestFiles.Write(notShorts, IdxTestFiles.Build(0x00000B01, [2], new byte[4]), gzip: false);
        Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabels(notShorts));
    }

    [Fact]
    public void RowLimitReadsOnlyTheFirstRows()
    {
        var pixels = IdxTestFiles.RandomBytes(6 * 2 * 3, seed: 5);
        var full = IdxTestFiles.Images(6, 2, 3, pixels);
        string path = _dir.File("images.gz");
        IdxTestFiles.Write(path, full, gzip: true);

        var two = IdxReader.ReadImages(path, limit: 2);
        Assert.Equal(2, two.Count);
        Assert.Equal(pixels.AsSpan(0, 12).ToArray(), two.Pixels);
        Assert.Equal(6, IdxReader.ReadImages(path, limit: 100).Count);
        Assert.Equal(0, IdxReader.ReadImages(path, limit: 0).Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => IdxReader.ReadImages(path, limit: -1));

        // Only the needed bytes are read: a limit inside the intact part of a truncated file succeeds.
        string truncated = _dir.File("truncated.gz");
        IdxTestFiles.Write(truncated, full.AsSpan(0, full.Length - 10).ToArray(), gzip: true);
        Assert.Equal(pixels.AsSpan(0, 18).ToArray(), IdxReader.ReadImages(truncated, limit: 3).Pixels);
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(truncated, limit: 6));
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void MissingFileIsReportedByName()
    {
        string path = _dir.File("nope");
        var e = Assert.Throws<FileNotFoundException>(() => IdxReader.ReadLabels(path));
        Assert.Contains(path, e.Message);
    }
}
