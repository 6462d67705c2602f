using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet.Tests.Data;

public sealed class DiabetesTests
{
    private static readonly string Dir = Diabetes.FindDataDirectory();

    // The first and second lines of diabetes_data_raw.csv.gz and diabetes_target.csv.gz, as written in the files.
    private static readonly float[] FirstRow = [59f, 2f, 32.1f, 101.0f, 157f, 93.2f, 38.0f, 4.0f, 4.8598f, 87f];
    private static readonly float[] SecondRow = [48f, 1f, 21.6f, 87.0f, 183f, 103.2f, 70.0f, 3.0f, 3.8918f, 69f];

    [Fact]
    public void FindsTheBundledFolderAndTheNamesAreScikitLearns()
    {
        Assert.Equal("diabetes", Path.GetFileName(Dir));
        Assert.Equal(["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"], Diabetes.FeatureNames);
        Assert.Equal(Diabetes.FeatureCount, Diabetes.FeatureNames.Length);
        Diabetes.FeatureNames[0] = "changed"; // a copy: the loader's names are unaffected
        Assert.Equal("age", Diabetes.FeatureNames[0]);
    }

    [Fact]
    public void BundledFilesMatchTheDocumentedSha256()
    {
        var expected = new Dictionary<string, (string Gz, string Content)>
        {
            [Diabetes.FeaturesFileName] = ("fc08fc59c1cbfe65550d9ebb36321d505de9e8f004bf92c1566d2908962f08ff", Diabetes.FeaturesSha256),
            [Diabetes.TargetsFileName] = ("bf1ddd1f9d377278450a5f02c24b5e77b1501f2ad673fe9fdf4c4090d27eb5cc", Diabetes.TargetsSha256),
        };
        foreach (var (name, sha) in expected)
        {
            string path = Path.Combine(Dir, name);
            Assert.Equal(sha.Gz, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))));
            Assert.Equal(sha.Content, Convert.ToHexStringLower(SHA256.HashData(Decompress(path))));
        }
    }

    [Fact]
    public void ReadGivesTheRawFileValues()
    {
        var (features, targets) = Diabetes.Read(Dir);

        Assert.Equal(442, features.Length);
        Assert.Equal(442, targets.Length);
        Assert.All(features, row => Assert.Equal(10, row.Length));
        Assert.Equal(FirstRow, features[0]);
        Assert.Equal(SecondRow, features[1]);
        Assert.Equal(151f, targets[0]);
        Assert.Equal(75f, targets[1]);
        Assert.Equal(57f, targets[441]);

        // Raw, unscaled: age in years, sex coded 1/2, s1 (total cholesterol) up to 301.
        Assert.Equal(19f, features.Min(r => r[0]));
        Assert.Equal(79f, features.Max(r => r[0]));
        Assert.Equal([1f, 2f], features.Select(r => r[1]).Distinct().Order());
        Assert.Equal(301f, features.Max(r => r[4]));
        Assert.Equal(25f, targets.Min());
        Assert.Equal(346f, targets.Max());
    }

    [Fact]
    public void LoadHasTheDocumentedSchemaAndAllRows()
    {
        var ml = new MLContext(seed: 1);
        var view = Diabetes.Load(ml, Dir);

        var features = Assert.IsType<VectorDataViewType>(view.Schema["Features"].Type);
        Assert.Equal(NumberDataViewType.Single, features.ItemType);
        Assert.True(features.IsKnownSize);
        Assert.Equal(10, features.Size);
        VBuffer<ReadOnlyMemory<char>> slotNames = default;
        view.Schema["Features"].GetSlotNames(ref slotNames);
        Assert.Equal(Diabetes.FeatureNames, slotNames.DenseValues().Select(n => n.ToString()));
        Assert.Equal(NumberDataViewType.Single, view.Schema["Label"].Type);

        var rows = ml.Data.CreateEnumerable<Row>(view, reuseRowObject: false).ToList();
        var (raw, targets) = Diabetes.Read(Dir);
        Assert.Equal(442, rows.Count);
        Assert.Equal(targets, rows.Select(r => r.Label));
        Assert.Equal(FirstRow, rows[0].Features);
        Assert.Equal(raw[441], rows[441].Features);
    }

    [Fact]
    public void SplitIsEveryFifthRowForTest()
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = Diabetes.Split(ml, Dir);
        var trainRows = ml.Data.CreateEnumerable<Row>(train, reuseRowObject: false).ToList();
        var testRows = ml.Data.CreateEnumerable<Row>(test, reuseRowObject: false).ToList();
        var (features, targets) = Diabetes.Read(Dir);

        Assert.Equal(353, trainRows.Count);
        Assert.Equal(89, testRows.Count);
        Assert.Equal(Diabetes.TrainRowCount, trainRows.Count);
        Assert.Equal(Diabetes.TestRowCount, testRows.Count);
        Assert.Equal(Enumerable.Range(0, 89).Select(k => targets[5 * k]), testRows.Select(r => r.Label));
        Assert.Equal(Enumerable.Range(0, 442).Where(i => i % 5 != 0).Select(i => targets[i]), trainRows.Select(r => r.Label));
        Assert.Equal(FirstRow, testRows[0].Features);  // index 0 → test
        Assert.Equal(SecondRow, trainRows[0].Features); // index 1 → train
        Assert.Equal(features[440], testRows[88].Features);
        Assert.Equal(10, Assert.IsType<VectorDataViewType>(train.Schema["Features"].Type).Size);
        Assert.Equal(NumberDataViewType.Single, test.Schema["Label"].Type);
    }

    [Fact]
    public void CorruptedOrMissingFilesAreRefusedNamingTheFile()
    {
        using var dir = new TempDirectory();
        File.Copy(Path.Combine(Dir, Diabetes.TargetsFileName), dir.File(Diabetes.TargetsFileName));
        string text = Encoding.ASCII.GetString(Decompress(Path.Combine(Dir, Diabetes.FeaturesFileName)));
        Assert.StartsWith("59 2 32.1 ", text);
        WriteGzip(dir.File(Diabetes.FeaturesFileName), Encoding.ASCII.GetBytes("58" + text[2..])); // one digit changed

        var e = Assert.Throws<InvalidDataException>(() => Diabetes.Read(dir.Path));
        Assert.Contains(Diabetes.FeaturesFileName, e.Message);
        Assert.Contains("SHA-256", e.Message);
        Assert.Throws<InvalidDataException>(() => Diabetes.Load(new MLContext(), dir.Path));

        File.Copy(Path.Combine(Dir, Diabetes.FeaturesFileName), dir.File(Diabetes.FeaturesFileName), overwrite: true);
        File.WriteAllBytes(dir.File(Diabetes.TargetsFileName), Encoding.ASCII.GetBytes("not gzip at all"));
        var e2 = Assert.Throws<InvalidDataException>(() => Diabetes.Split(new MLContext(), dir.Path));
        Assert.Contains(Diabetes.TargetsFileName, e2.Message);

        File.Delete(dir.File(Diabetes.TargetsFileName));
        var e3 = Assert.Throws<FileNotFoundException>(() => Diabetes.Read(dir.Path));
        Assert.Contains(Diabetes.TargetsFileName, e3.Message);
    }

    private static byte[] Decompress(string path)
    {
        using var file = File.OpenRead(path);
        using var zip = new GZipStream(file, CompressionMode.Decompress);
        using var buffer = new MemoryStream();
        zip.CopyTo(buffer);
        return buffer.ToArray();
    }

    private static void WriteGzip(string path, byte[] content)
    {
        using var file = File.Create(path);
        using var zip = new GZipStream(file, CompressionLevel.Optimal);
        zip.Write(content);
    }

    private sealed class Row
    {
        [VectorType(10)]
        public float[] Features { get; set; } = [];

        public float Label { get; set; }
    }
}
