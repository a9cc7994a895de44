FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN FINTRACK_VAR_DIR=/tmp/build python manage.py collectstatic --noinput
RUN useradd --create-home fintrack
USER fintrack
EXPOSE 8000
CMD ["gunicorn", "fintrack.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
