using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet.Samples.Datasets;

/// <summary>
/// An in-memory <see cref="IDataView"/> over labelled byte images, with two columns:
/// a label column (key type, <see cref="uint"/>, one value per class, with the class names as its
/// <c>KeyValues</c> annotation) and a features column (known-size vector of <see cref="float"/>, one value per pixel,
/// raw 0..255, not scaled).
/// </summary>
/// <remarks>
/// Memory: the view keeps only the byte pixels and byte labels it was given (47 MB for the Fashion-MNIST training
/// set); each cursor converts one row at a time into the caller's <see cref="VBuffer{T}"/>, so no per-row float
/// arrays are ever materialized (60,000 float[784] rows would be 188 MB). Supports shuffled cursors (random access).
/// A file label <c>k</c> is exposed as key value <c>k + 1</c> (key value 0 means missing in ML.NET).
/// </remarks>
public sealed class LabeledImageDataView : IDataView
{
    /// <summary>The name of the <c>KeyValues</c> annotation kind ML.NET uses for key names.</summary>
    public const string KeyValuesAnnotationKind = "KeyValues";

    private readonly byte[] _pixels;
    private readonly byte[] _labels;
    private readonly int _featureLength;
    private readonly int _labelIndex;

    /// <summary>Creates the view.</summary>
    /// <param name="data">Images and labels; the arrays are kept, not copied, and must not change afterwards.</param>
    /// <param name="classNames">One name per class; every label must be below its count.</param>
    /// <param name="labelColumnName">Name of the key-typed label column.</param>
    /// <param name="featuresColumnName">Name of the float-vector features column.</param>
    /// <exception cref="InvalidDataException">A label is not below the number of classes (names the row and value).</exception>
    public LabeledImageDataView(
        IdxLabeledImages data,
        IReadOnlyList<string> classNames,
        string labelColumnName = "Label",
        string featuresColumnName = "Features")
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentException.ThrowIfNullOrEmpty(labelColumnName);
        ArgumentException.ThrowIfNullOrEmpty(featuresColumnName);
        if (classNames.Count < 1)
        {
            throw new ArgumentException("At least one class name is needed.", nameof(classNames));
        }

        if (labelColumnName == featuresColumnName)
        {
            throw new ArgumentException($"The label and features columns need different names; both are '{labelColumnName}'.");
        }

        for (int i = 0; i < data.Labels.Length; i++)
        {
            if (data.Labels[i] >= classNames.Count)
            {
                throw new InvalidDataException(
                    $"Row {i} has label {data.Labels[i]}; expected a class index 0..{classNames.Count - 1} ({classNames.Count} classes).");
            }
        }

        _pixels = data.Images.Pixels;
        _labels = data.Labels;
        _featureLength = data.Images.PixelsPerImage;
        Count = data.Count;
        ClassNames = classNames.ToArray();

        var names = ClassNames.Select(n => n.AsMemory()).ToArray();
        var annotations = new DataViewSchema.Annotations.Builder();
        annotations.Add<VBuffer<ReadOnlyMemory<char>>>(
            KeyValuesAnnotationKind,
            new VectorDataViewType(TextDataViewType.Instance, names.Length),
            (ref VBuffer<ReadOnlyMemory<char>> value) => new VBuffer<ReadOnlyMemory<char>>(names.Length, names).CopyTo(ref value));

        var schema = new DataViewSchema.Builder();
        schema.AddColumn(labelColumnName, new KeyDataViewType(typeof(uint), names.Length), annotations.ToAnnotations());
        schema.AddColumn(featuresColumnName, new VectorDataViewType(NumberDataViewType.Single, _featureLength));
        Schema = schema.ToSchema();
        _labelIndex = 0;
    }

    /// <summary>Number of rows.</summary>
    public int Count { get; }

    /// <summary>The class names (the label column's key values), in class-index order.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <inheritdoc />
    public bool CanShuffle => true;

    /// <inheritdoc />
    public DataViewSchema Schema { get; }

    /// <inheritdoc />
    public long? GetRowCount() => Count;

    /// <inheritdoc />
    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        ArgumentNullException.ThrowIfNull(columnsNeeded);
        var active = new bool[Schema.Count];
        foreach (var column in columnsNeeded)
        {
            if (column.Index < 0 || column.Index >= Schema.Count || Schema[column.Index].Name != column.Name)
            {
                throw new ArgumentException($"Column '{column.Name}' does not belong to this data view's schema.", nameof(columnsNeeded));
            }

            active[column.Index] = true;
        }

        int[]? order = null;
        if (rand is not null)
        {
            order = new int[Count];
            for (int i = 0; i < order.Length; i++)
            {
                order[i] = i;
            }

            for (int i = order.Length - 1; i > 0; i--)
            {
                int j = rand.Next(i + 1);
                (order[i], order[j]) = (order[j], order[i]);
            }
        }

        return new Cursor(this, active, order);
    }

    /// <inheritdoc />
    /// <remarks>Always returns a single cursor; <paramref name="n"/> is only a suggestion in the ML.NET contract.</remarks>
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly LabeledImageDataView _parent;
        private readonly bool[] _active;
        private readonly int[]? _order;
        private long _position = -1;
        private int _row = -1;
        private bool _disposed;

        public Cursor(LabeledImageDataView parent, bool[] active, int[]? order)
        {
            _parent = parent;
            _active = active;
            _order = order;
        }

        public override DataViewSchema Schema => _parent.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool IsColumnActive(DataViewSchema.Column column)
        {
            CheckColumn(column);
            return _active[column.Index];
        }

        public override bool MoveNext()
        {
            if (_disposed || _position + 1 >= _parent.Count)
            {
                _row = -1;
                if (!_disposed)
                {
                    _position = _parent.Count;
                }

                return false;
            }

            _position++;
            _row = _order is null ? (int)_position : _order[_position];
            return true;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter()
            => (ref DataViewRowId value) =>
            {
                EnsureRow();
                value = new DataViewRowId((ulong)_row, 0);
            };

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            CheckColumn(column);
            if (!_active[column.Index])
            {
                throw new InvalidOperationException($"Column '{column.Name}' was not requested when this cursor was created.");
            }

            if (column.Index == _parent._labelIndex)
            {
                if (typeof(TValue) != typeof(uint))
                {
                    throw new InvalidOperationException(
                        $"Column '{column.Name}' is a key of UInt32; a getter of {typeof(TValue).Name} was requested.");
                }

                ValueGetter<uint> getter = (ref uint value) =>
                {
                    EnsureRow();
                    value = (uint)_parent._labels[_row] + 1;
                };
                return (ValueGetter<TValue>)(Delegate)getter;
            }

            if (typeof(TValue) != typeof(VBuffer<float>))
            {
                throw new InvalidOperationException(
                    $"Column '{column.Name}' is a vector of Single; a getter of {typeof(TValue).Name} was requested.");
            }

            ValueGetter<VBuffer<float>> features = (ref VBuffer<float> value) =>
            {
                EnsureRow();
                int length = _parent._featureLength;
                var source = _parent._pixels.AsSpan(_row * length, length);
                var editor = VBufferEditor.Create(ref value, length);
                var values = editor.Values;
                for (int i = 0; i < length; i++)
                {
                    values[i] = source[i];
                }

                value = editor.Commit();
            };
            return (ValueGetter<TValue>)(Delegate)features;
        }

        protected override void Dispose(bool disposing)
        {
            _disposed = true;
            _row = -1;
            base.Dispose(disposing);
        }

        private void CheckColumn(DataViewSchema.Column column)
        {
            if (column.Index < 0 || column.Index >= _active.Length || _parent.Schema[column.Index].Name != column.Name)
            {
                throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' is not in this cursor's schema.");
            }
        }

        private void EnsureRow()
        {
            if (_row < 0)
            {
                throw new InvalidOperationException("The cursor is not on a row: call MoveNext first (and stop once it returns false).");
            }
        }
    }
}
